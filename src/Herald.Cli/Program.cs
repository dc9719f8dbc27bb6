using Herald.Cli;

return HeraldCommand.Run(args, Console.Out, Console.Error);
